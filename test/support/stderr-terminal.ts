/**
 * Preloaded into a CLI child (`node --import`): its stderr says it is a terminal, 80 columns wide,
 * so the progress display draws its bar there as on a real one (cli-progress asks nothing more of
 * the stream), whatever the pipe the test reads it through.
 */
Object.assign(process.stderr, { isTTY: true, columns: 80 });
