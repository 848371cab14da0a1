/**
 * Other load on the machine while the bench runs: CPU time used by processes that are not the bench's own.
 *
 * /proc/stat gives the whole machine's busy ticks; /proc/<pid>/stat gives each process's. The bench's own are
 * this process and every descendant (the service and its worker threads, the Python children, the load
 * generator, which runs in this process), each with the ticks of its children already reaped (cutime,
 * cstime), so a child that exits between two samples is neither lost nor counted twice. What is left is
 * other processes' CPU time. Interrupt and steal time are recorded apart: they are not processes, and the
 * loopback HTTP traffic of the bench itself shows up as softirq.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { round } from './stats.js';

/** USER_HZ: the unit of /proc/stat and /proc/<pid>/stat on Linux. */
const TICKS_PER_S = 100;

interface Sample {
  at: number;
  /** user + nice + system ticks of all CPUs. */
  busy: number;
  irq: number;
  steal: number;
  /** user + system ticks of the bench's own process tree, reaped children included. */
  own: number;
}

export interface LoadWindow {
  seconds: number;
  /** Cores' worth of CPU used by processes other than the bench's own (1 = one core busy all the time). */
  other_cores: number;
  own_cores: number;
  irq_cores: number;
  steal_cores: number;
}

function procStat(pid: number | 'self'): { ppid: number; ticks: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces and parentheses): state is field 3.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) }; // utime stime cutime cstime
  } catch {
    return null; // the process exited while we read
  }
}

/** Ticks of `root` and all its descendants (one pass over /proc). */
function treeTicks(root: number): number {
  const procs = new Map<number, { ppid: number; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(Number(name));
    if (s) procs.set(Number(name), s);
  }
  const children = new Map<number, number[]>();
  for (const [pid, s] of procs) children.set(s.ppid, [...(children.get(s.ppid) ?? []), pid]);
  let total = 0;
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop()!;
    total += procs.get(pid)?.ticks ?? 0;
    todo.push(...(children.get(pid) ?? []));
  }
  return total;
}

function sample(): Sample {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
  return { at: performance.now(), busy: user + nice + system, irq: irq + softirq, steal, own: treeTicks(process.pid) };
}

function window(a: Sample, b: Sample): LoadWindow {
  const s = (b.at - a.at) / 1000;
  const cores = (ticks: number) => round(Math.max(0, ticks) / TICKS_PER_S / s, 3);
  return { seconds: round(s, 1), other_cores: cores(b.busy - a.busy - (b.own - a.own)), own_cores: cores(b.own - a.own), irq_cores: cores(b.irq - a.irq), steal_cores: cores(b.steal - a.steal) };
}

/** Whether this machine has the Linux /proc files the check reads. */
export function canMeasureLoad(): boolean {
  try {
    readFileSync('/proc/stat', 'utf8');
    return procStat('self') !== null;
  } catch {
    return false;
  }
}

/** Other load over `seconds` of the bench doing nothing: the check before a run. */
export async function idleLoad(seconds: number): Promise<LoadWindow> {
  const a = sample();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return window(a, sample());
}

/** A mark to measure one stretch of the run (a load cell) from. */
export function mark(): { stop(): LoadWindow } {
  const a = sample();
  return { stop: () => window(a, sample()) };
}

/**
 * Samples the whole run every `intervalS` seconds; `stop()` gives the run's total and the busiest interval.
 * The timer is unref'd and reads /proc synchronously (a few ms): the event loop must stay free, so the
 * bench's children run asynchronously.
 */
export function monitor(intervalS = 2): { stop(): { total: LoadWindow; intervals: LoadWindow[] } } {
  const first = sample();
  let last = first;
  const intervals: LoadWindow[] = [];
  const timer = setInterval(() => {
    const now = sample();
    intervals.push(window(last, now));
    last = now;
  }, intervalS * 1000);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      const end = sample();
      if (end.at - last.at > 200) intervals.push(window(last, end));
      return { total: window(first, end), intervals };
    },
  };
}
