package ai.mode.parallel.cli;

import ai.mode.cli.CommandProvider;

/**
 * Registers the parallel module's CLI subcommands ({@code mode train}, {@code mode costmodel}) with the mode CLI.
 * Service providers of {@link ai.mode.cli.CommandProvider}.
 */
public final class ParallelCommands {
    private ParallelCommands() {}

    /** {@code mode train}. */
    public static final class Train implements CommandProvider {
        @Override
        public String name() {
            return "train";
        }

        @Override
        public Object command() {
            return new TrainCommand();
        }
    }

    /** {@code mode costmodel}. */
    public static final class Cost implements CommandProvider {
        @Override
        public String name() {
            return "costmodel";
        }

        @Override
        public Object command() {
            return new CostModelCommand();
        }
    }
}
