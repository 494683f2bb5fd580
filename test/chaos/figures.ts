/**
 * How a chaos scenario reports what it measured: one line `chaos-figures {"scenario":…,…}` on stdout (vitest
 * shows it with the test), and the same object appended to the JSON-lines file named by $EDGE_CHAOS_FIGURES when
 * set (the soak and docs/reliability.md's tables read those). Figures are numbers (durations in ms or s, counts)
 * or short strings; `passed` says whether the scenario's bounds held.
 */
import fs from 'node:fs';

/** What a scenario measured. */
export interface ScenarioFigures {
  /** Scenario name, `area/what` (e.g. `partition/agent-blackhole`). */
  scenario: string;
  /** Whether its bounds held. */
  passed: boolean;
  /** Anything else it measured. */
  [figure: string]: string | number | boolean | undefined;
}

/** Prints (and records) a scenario's figures; returns them. */
export function reportFigures(figures: ScenarioFigures): ScenarioFigures {
  const line = JSON.stringify(figures);
  console.log(`chaos-figures ${line}`);
  const file = process.env.EDGE_CHAOS_FIGURES;
  if (file) fs.appendFileSync(file, `${line}\n`);
  return figures;
}
