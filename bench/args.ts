import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** The options a script takes, one per line, as its usage. */
function usage(script: string, options: Options): string {
  const lines = Object.entries(options).map(([name, o]) => `  --${name}${o.type === 'string' ? ' <value>' : ''}${o.multiple === true ? ' (repeatable)' : ''}`);
  return [`usage: node ${script} [options]`, '', 'options (what each means: the comment at the top of the script and the README command that runs it):', ...lines, '  --help'].join('\n');
}

/**
 * parseArgs() for a benchmark script run from the command line: `--help` prints the options it
 * takes and exits with 0; an unknown option, a missing value, a stray argument, or an option of
 * `how.numbers` (and --dim, --n) that is not a number or a comma list of numbers prints what was
 * wrong and the options, and exits with 2, where parseArgs' own error ended the process with a
 * stack trace and `Number()` turned a typo into NaN.
 */
export function benchArgs<T extends Options>(
  script: string,
  config: { options: T },
  how: { readonly numbers?: readonly (keyof T & string)[]; readonly choices?: Partial<Record<keyof T & string, readonly string[]>>; readonly argv?: string[] } = {},
): ReturnType<typeof parseArgs<{ options: T; args: string[] }>> {
  const { options } = config;
  const argv = how.argv ?? process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${usage(script, options)}\n`);
    process.exit(0);
  }
  let parsed: ReturnType<typeof parseArgs<{ options: T; args: string[] }>>;
  try {
    parsed = parseArgs({ options, args: argv });
  } catch (e) {
    return refuse(script, options, (e as Error).message);
  }
  // --dim and --n (DATA_OPTIONS) are numbers wherever a script takes them.
  const numbers = new Set<string>([...(how.numbers ?? []), ...['dim', 'n'].filter((name) => name in options)]);
  for (const name of numbers) {
    const value = (parsed.values as Record<string, unknown>)[name];
    if (typeof value !== 'string') continue;
    if (!value.split(',').every((part) => part.trim() !== '' && Number.isFinite(Number(part)))) {
      return refuse(script, options, `--${name} takes a number (or numbers separated by commas), got '${value}'`);
    }
  }
  for (const [name, allowed] of Object.entries(how.choices ?? {}) as [string, readonly string[]][]) {
    const value = (parsed.values as Record<string, unknown>)[name];
    if (typeof value === 'string' && !allowed.includes(value)) {
      return refuse(script, options, `--${name} takes ${allowed.join(' or ')}, got '${value}'`);
    }
  }
  return parsed;
}

function refuse(script: string, options: Options, what: string): never {
  process.stderr.write(`${script}: ${what}\n\n${usage(script, options)}\n`);
  process.exit(2);
}
