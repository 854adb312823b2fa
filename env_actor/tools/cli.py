"""Exit codes shared by the console tools: 0 success, 1 a run that failed, 2 a usage or
input error (one line on stderr naming what is wrong, never a traceback)."""
import argparse
import functools
from pathlib import Path
import sys
from typing import Callable, Optional, Sequence

# errors a user causes with a wrong path, file or value (BagError and PolicyLoadError are
# ValueErrors); anything else is a bug and keeps its traceback
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError,
               NotADirectoryError, PermissionError)


def exit_codes(main: Callable[[Optional[Sequence[str]]], int]):
    """Decorate a tool's `main(args=None) -> int`: user errors become one line and exit 2,
    Ctrl-C exits 130 without a traceback."""
    @functools.wraps(main)
    def wrapper(args: Optional[Sequence[str]] = None) -> int:
        prog = Path(sys.argv[0]).name if args is None else main.__module__.split('.')[-1]
        try:
            return main(args)
        except USER_ERRORS as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f'{prog}: error: {text}', file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
    return wrapper


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that ends each option with its default, except for flags, unset (None)
    defaults and help texts that already say `(default: ...)` in words."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if (action.default is None or isinstance(action.default, bool)
                or '(default: ' in (action.help or '')):
            return action.help or ''
        return super()._get_help_string(action)


def tool_parser(description: str, **kwargs) -> argparse.ArgumentParser:
    """Return an ArgumentParser for a console tool whose `--help` shows every default.

    Args:
        description: the tool's description (first line of its module docstring).
        **kwargs: passed on to argparse.ArgumentParser.
    """
    return argparse.ArgumentParser(description=description,
                                   formatter_class=DefaultsHelpFormatter, **kwargs)
