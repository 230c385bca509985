package ai.mode.bench;

import ai.mode.cli.CommandProvider;

/**
 * Registers {@code mode bench} with the CLI: the service provider that {@code ai.mode.cli.Main} finds through
 * ServiceLoader.
 */
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
