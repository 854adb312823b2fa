"""The bottom layer: what every other package may import and that imports none of them.

    base (generic Registry, RTC soft-mask math) <- models <- policy <- runtime <- ros, tools
"""
