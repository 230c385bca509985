package ai.mode.cli;

/**
 * Service-provider hook for CLI subcommands that live in modules above {@code model} (benchmarks,
 * parallel). Register in {@code META-INF/services/ai.mode.cli.CommandProvider}; {@link Main} adds them.
 */
public interface CommandProvider {
    /** The subcommand's name, e.g. {@code bench}. */
    String name();

    /** A new picocli command object (annotated with {@code @Command}). */
    Object command();
}
