// Registers `mode bench` with the CLI (ai.mode.cli.Main finds it through ServiceLoader).
package ai.mode.bench;

import ai.mode.cli.CommandProvider;

/** Service provider for the {@code bench} subcommand. */
public final class BenchCommandProvider implements CommandProvider {
    @Override
    public String name() {
        return "bench";
    }

    @Override
    public Object command() {
        return new BenchCommand();
    }
}
