"""The scheme reference: every registered royalty scheme described for people, from the registry.

:func:`scheme_reference` renders :func:`royaltysim.schemes.scheme_info` of each registered scheme
as terminal text (``royaltysim schemes``) or as Markdown (``docs/schemes.md``, written by
``royaltysim schemes --markdown > docs/schemes.md``; ``tests/royaltysim/test_docs.py`` checks the
committed file is what this module renders). No scheme is described here: summaries, rules,
parameters, defaults and meanings all come from the registrations and the scheme functions in
:mod:`royaltysim.schemes`, so the reference cannot drift from the code. This module only adds what
holds for every scheme: how a scenario names one, the two pools and who is eligible for each.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from typing import Any

import yaml

from royaltysim.schemes import SCHEMES, SchemeInfo, scheme_info

__all__ = ["scheme_reference", "scheme_example", "POOL_TITLES"]

#: how the reference names the pool a scheme is designed for
POOL_TITLES = {"human": "the human-streams pool", "ai": "the AI royalty pool"}

# what a scheme does when an arm names it for the other pool (Platform.settle in royaltysim/agents/platform.py)
_OTHER_POOL = {
    "human": (
        "Named for the AI pool (`ai: {{name: {name}}}`), it splits the AI pool by the same rule, on human "
        "streams, among the creators who are active and opted in to AI training: AI money follows human "
        "listening."
    ),
    "ai": (
        "Named for the human-streams pool (`human: {{name: {name}}}`), it splits the streaming money by the "
        "same rule among the creators who are active, whatever listeners played."
    ),
}

_MARKDOWN_INTRO = """\
# Royalty schemes

<!-- Generated from the scheme registry (royaltysim/schemes/) by
     `royaltysim schemes --markdown > docs/schemes.md`. Do not edit by hand:
     tests/royaltysim/test_docs.py checks that this file is current. -->

A royalty scheme is a rule that splits one month's pool of money among creators. Each arm of a
scenario names one scheme for each of the platform's two pools, with its parameters (any left out
take the defaults below; a scheme with no `name` is `pro_rata`):

```yaml
schemes:
  - label: hybrid floor
    human: {{name: pro_rata}}
    ai: {{name: hybrid, params: {{floor: 0.3, floor_basis: seconds}}}}
```

`royaltysim validate` checks every name and parameter value and lists the allowed ones; this page
is also printed by `royaltysim schemes`. The model around the schemes is described in
[ODD.md](ODD.md), scenario files in [scenarios.md](scenarios.md).

## The two pools

Every month the platform ([`Platform.settle`](../royaltysim/agents/platform.py)) splits each listener's fee
between human and AI listening in proportion to that listener's streams of each, then:

- the **human-streams pool** is (1 - `platform.platform_cut`) of the revenue attributed to human
  listening; the creators who are active (in the market) are eligible for it;
- the **AI royalty pool** is `platform.ai_pool_rate` of the revenue attributed to AI listening; the
  creators who are active *and* opted in to AI training are eligible for it.

A scheme sees the month's settlement ([`Settlement`](../royaltysim/schemes/settlement.py)): the pool `P` and
each user's part of it `P_u`, the (users x creators) human streams `s_ua`, each creator's works
and what they have in the AI's training set (works and seconds of music), the plays of each AI
output, each output's causal attribution and similarity to each catalogue, and who is eligible.
Money is in the fee currency.

What every scheme guarantees ([`pay`](../royaltysim/schemes/registry.py)): payouts are non-negative and zero
for every creator who is not eligible, and they add up to the whole pool whenever the rule has a
*basis* to pay on. When it has none (no eligible creator, no streams, no AI plays, all-zero
weights) it pays nothing and the whole pool is left unallocated. A scheme never pays part of the
pool: money it cannot place on one basis is re-spread on the basis it has, as each rule says.

## Nesting schemes

Some schemes are *combinators*: their parameters hold other schemes, so a scenario can build a
licence from parts. `mix` pays each part its weight of the pool (the weights sum to 1); `floor`
guarantees a minimum per creator or per work; `cap` limits any creator's share of the pool;
`threshold` pays nothing to creators under a number of streams; `eligibility` pays only creators in
the AI's training set (opted in) or with works. A parameter that is a scheme is written
`{{name: NAME, params: {{...}}}}`, and combinators nest to any depth:

```yaml
schemes:
  - label: 30% equal + 70% causal
    ai:
      name: mix
      params:
        parts:
          - {{weight: 0.3, scheme: {{name: fixed_fee}}}}
          - {{weight: 0.7, scheme: {{name: causal}}}}
  - label: causal capped at 10%
    human: {{name: threshold, params: {{min_streams: 1000, scheme: {{name: pro_rata}}}}}}
    ai: {{name: cap, params: {{max_share: 0.1, scheme: {{name: causal}}}}}}
```

A combinator runs on either pool; the rules inside it must suit the pool (`royaltysim validate`
names the key path of each problem, down to a nested scheme's parameter:
schemes[0].ai.params.parts[1].scheme.params.negative).
Money is conserved through any nesting: every level keeps the contract above, so the pool is paid
whole or, when nothing at the top has a basis, left unallocated whole. `hybrid` is the `mix` of
`fixed_fee` (or `training_share`) and `causal`, kept under its own name.

## Rules that change over time

An arm's `schedule` changes its rules from a month on: each phase names the first month it pays
(`from_month`, counted as the `step` column counts, 1 = the first simulated month) and the scheme of
the pool it changes (`human:`, `ai:` or both; a pool it leaves out keeps its scheme). The months must
increase strictly, phase by phase (a phase from after the last month simulated never takes effect);
every scheme is checked as an arm's own.
The run report marks each switch month in its month-by-month figure, and `model.parquet` records the
schemes in force each month (`human_scheme`, `ai_scheme`).

```yaml
schemes:
  - label: pro-rata, then user-centric
    human: {{name: pro_rata}}
    schedule:
      - {{from_month: 13, human: {{name: user_centric}}}}
```

## AI pool terms

How much goes into the AI pool is the licence's money terms, not a scheme's: by default
`platform.ai_pool_rate` of the AI's gross income. An arm's `ai_pool` sets its own terms, GEMA-style
(2024: a share of the AI service's net income with a minimum royalty): each listener's month pays
`max(rate * income, minimum_per_play * AI streams)`, `income` the AI's share of the listener's fee
(`gross`) or that less the AI's serving cost of those streams (`net`, `platform.ai_cost_per_stream`
each, never below 0). The minimum comes out of the platform's margin; the scheme under `ai:` then
splits the pool.

| key | default | allowed | meaning |
|---|---|---|---|
| `rate` | `0.3` | a number in [0, 1] | the share of the AI income paid in (GEMA reportedly asks 30%) |
| `income` | `net` | one of: gross, net | the AI's share of the fees, or that less its serving cost |
| `minimum_per_play` | `0.0` | a number >= 0 | the minimum royalty in $ per AI stream (GEMA publishes no figure) |

```yaml
schemes:
  - label: GEMA-style
    ai_pool: {{rate: 0.3, income: net, minimum_per_play: 0.0015}}
    ai: {{name: causal}}
```

Schemes: {index}.
"""

_TEXT_INTRO = """\
Royalty schemes: each arm of a scenario names one for the human-streams pool and one for the AI
pool, e.g.  ai: {name: hybrid, params: {floor: 0.3, floor_basis: seconds}}
The human pool is (1 - platform.platform_cut) of human-listening revenue, paid to active creators;
the AI pool is platform.ai_pool_rate of AI-listening revenue, paid to creators who are active and
opted in to AI training. With no basis to pay on, a scheme pays nothing and the pool stays
unallocated. Full reference: docs/schemes.md.
"""


def _value(value: Any) -> str:
    """A parameter value as a scenario (YAML) writes it."""
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def scheme_example(info: SchemeInfo) -> str:
    """The scheme with every parameter at its default, as an arm's entry for its pool (``ai: {name: ...}``)."""
    spec: dict[str, Any] = {"name": info.name}
    if info.params:
        spec["params"] = {p.name: p.default for p in info.params}
    flow = yaml.safe_dump(spec, default_flow_style=True, sort_keys=False, width=1000).strip()
    return f"{info.pool or 'ai'}: {flow}"


def _pool_line(info: SchemeInfo) -> str:
    from royaltysim.combinators import nested_parameters

    if nested_parameters(info.name):
        return (
            f"A combinator: its example is for {POOL_TITLES.get(info.pool or 'ai')}, but it runs on either pool; "
            "the schemes nested in it must suit the pool the arm names it for (a rule designed for the AI pool "
            "cannot be nested under `human:`)."
        )
    if info.pool is None:
        return "Pool: not stated at registration."
    return f"Designed for {POOL_TITLES[info.pool]}. " + _OTHER_POOL[info.pool].format(name=info.name)


def _markdown_section(info: SchemeInfo) -> str:
    lines = [f"## `{info.name}`", "", f"**{info.summary}**", ""]
    if info.basis:
        lines += [f"Pays on: {info.basis}.", ""]
    lines += [info.description, "", _pool_line(info), ""]
    if info.params:
        lines += ["| parameter | default | allowed | meaning |", "|---|---|---|---|"]
        for p in info.params:
            meaning = p.meaning.replace("|", "\\|") or "(not documented)"
            lines.append(f"| `{p.name}` | `{_value(p.default)}` | {p.allowed} | {meaning} |")
    else:
        lines.append("No parameters.")
    lines += ["", "In an arm of a scenario, with every default:", "", "```yaml", scheme_example(info), "```", ""]
    return "\n".join(lines)


def _wrap(text: str, indent: str, width: int = 100) -> list[str]:
    """Wrap prose to ``width``, paragraph by paragraph, keeping numbered items apart."""
    out: list[str] = []
    for paragraph in text.split("\n\n"):
        items: list[str] = []
        for line in paragraph.splitlines():
            starts_item = line[:1].isdigit() and line[1:3] == ". "
            if items and not starts_item:
                items[-1] += " " + line.strip()
            else:
                items.append(line.strip())
        for item in items:
            hang = " " * 3 if item[:1].isdigit() and item[1:3] == ". " else ""
            out += textwrap.wrap(item, width, initial_indent=indent, subsequent_indent=indent + hang)
        out.append("")
    return out[:-1]


def _text_section(info: SchemeInfo) -> str:
    title = f"{info.name}  [{POOL_TITLES[info.pool]}]" if info.pool else info.name
    lines = [title, *_wrap(info.summary, "  ")]
    if info.basis:
        lines += _wrap(f"Pays on: {info.basis}.", "  ")
    lines += ["", *_wrap(info.description, "  "), "", *_wrap(_pool_line(info), "  "), ""]
    if info.params:
        lines.append("  Parameters:")
        for p in info.params:
            lines.append(f"    {p.name} (default {_value(p.default)}; {p.allowed})")
            lines += _wrap(p.meaning or "(not documented)", "        ")
    else:
        lines.append("  No parameters.")
    lines.append(f"  In a scenario: {scheme_example(info)}")
    return "\n".join(lines)


def _ordered(names: Iterable[str] | None) -> list[SchemeInfo]:
    """Reference entries, grouped by pool (human first) in registration order."""
    chosen = list(SCHEMES) if names is None else list(dict.fromkeys(names))
    infos = [scheme_info(n) for n in chosen]  # unknown names raise UnknownSchemeError here
    rank = {"human": 0, "ai": 1, None: 2}
    return sorted(infos, key=lambda i: rank[i.pool])  # (stable: registration order within a pool)


def scheme_reference(names: Iterable[str] | None = None, *, markdown: bool = False) -> str:
    """The reference of the named schemes (default: every registered one) as text or Markdown.

    Args:
        names: schemes to describe; unknown names raise :class:`~royaltysim.schemes.UnknownSchemeError`.
        markdown: render ``docs/schemes.md`` (only meaningful for every scheme) instead of terminal text.
    """
    infos = _ordered(names)
    if markdown:
        index = ", ".join(f"[`{i.name}`](#{i.name})" for i in infos)
        return _MARKDOWN_INTRO.format(index=index) + "\n" + "\n".join(_markdown_section(i) for i in infos)
    return _TEXT_INTRO + "\n" + "\n\n".join(_text_section(i) for i in infos) + "\n"
