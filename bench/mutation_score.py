"""Mutation score per module from mutmut's results (run `make mutation` first).

    python bench/mutation_score.py

Reads mutants/**/<module>.py.meta (mutmut 3), counts killed (a test failed, incl. timeouts
and crashes: the mutant was detected), survived, no tests; prints a table, the surviving
mutant names per module, and writes bench/results/mutation.json.
"""
from collections import Counter
import json
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parser as bench_parser, table, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DETECTED = {'killed', 'timeout', 'segfault', 'caught by type check', 'suspicious'}


def status(code) -> str:
    from mutmut.stats import status_by_exit_code
    return status_by_exit_code[code]


def main(args=None) -> int:
    opts = bench_parser(__doc__.splitlines()[0], 'mutation').parse_args(args)
    metas = sorted((ROOT / 'mutants').glob('**/*.py.meta'))
    if not metas:
        print('no mutmut results: run `make mutation`')
        return 1
    rows, result = [], {}
    for meta in metas:
        module = str(meta.relative_to(ROOT / 'mutants'))[:-len('.meta')]
        codes = json.loads(meta.read_text())['exit_code_by_key']
        counts = Counter(status(c) for c in codes.values())
        detected = sum(n for s, n in counts.items() if s in DETECTED)
        tested = detected + counts.get('survived', 0)
        score = detected / tested if tested else float('nan')
        survivors = sorted(k.split('.')[-1].replace('\u01c1', '.') for k, c in codes.items()
                           if status(c) == 'survived')
        result[module] = {'mutants': len(codes), 'detected': detected,
                          'survived': counts.get('survived', 0),
                          'no_tests': counts.get('no tests', 0),
                          'not_checked': counts.get('not checked', 0),
                          'score': score, 'survivors': survivors}
        rows.append([module, len(codes), detected, counts.get('survived', 0),
                     counts.get('no tests', 0), f'{100 * score:.1f} %'])
    print(table(['module', 'mutants', 'killed', 'survived', 'no tests', 'score'], rows))
    for module, r in result.items():
        if r['survivors']:
            print(f"\n{module}: {len(r['survivors'])} survivors")
            for name in r['survivors']:
                print(f'  {name}')
    print(f"\nwrote {write_results('mutation', result, out=opts.out)}")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
