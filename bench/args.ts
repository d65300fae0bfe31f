import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** The options a script takes, one per line, as its usage. */
function usage(script: string, options: Options): string {
  const lines = Object.entries(options).map(([name, o]) => `  --${name}${o.type === 'string' ? ' <value>' : ''}${o.multiple === true ? ' (repeatable)' : ''}`);
  return [`usage: node ${script} [options]`, '', 'options (what each means: the comment at the top of the script and the README command that runs it):', ...lines, '  --help'].join('\n');
}

/**
 * parseArgs() for a benchmark script run from the command line: `--help` prints the options it
 * takes and exits with 0; an unknown option, a missing value or a stray argument prints what was
 * wrong and the options, and exits with 2, where parseArgs' own error ended the process with a
 * stack trace.
 */
export function benchArgs<T extends Options>(script: string, config: { options: T }, argv: string[] = process.argv.slice(2)): ReturnType<typeof parseArgs<{ options: T; args: string[] }>> {
  const { options } = config;
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${usage(script, options)}\n`);
    process.exit(0);
  }
  try {
    return parseArgs({ options, args: argv });
  } catch (e) {
    process.stderr.write(`${script}: ${(e as Error).message}\n\n${usage(script, options)}\n`);
    process.exit(2);
  }
}
