package ai.mode.cli;

import java.util.ServiceLoader;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code mode} command line. The only class allowed to end the JVM with an exit code. */
@Command(
        name = "mode",
        mixinStandardHelpOptions = true,
        version = "MoDE-J 0.1.0",
        description = "Modular Domain Experts (MoDE) language-model training on the JVM.",
        subcommands = {
            CommandLine.HelpCommand.class,
            PretrainCommand.class,
            EvalCommand.class,
            GradsCommand.class,
            DemoCommand.class,
            ExpertCommand.class,
            ComposeCommand.class,
            BaselineCommand.class,
            ModeExperimentCommand.class,
            EvalModeCommand.class,
            ImportLlama2cCommand.class,
            ImportGgufCommand.class
        })
public final class Main implements Runnable {

    @Override
    public void run() {
        CommandLine.usage(this, System.out);
    }

    /** Builds the command tree, with subcommands contributed by other modules. */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Main());
        for (CommandProvider p : ServiceLoader.load(CommandProvider.class)) {
            cl.addSubcommand(p.name(), p.command());
        }
        cl.setParameterExceptionHandler((ex, args) -> {
            CommandLine cmd = ex.getCommandLine();
            cmd.getErr().println(qualifiedName(cmd) + ": " + oneLine(ex) + " (see: " + qualifiedName(cmd) + " --help)");
            return 2;
        });
        cl.setExecutionExceptionHandler((ex, cmd, parseResult) -> {
            cmd.getErr().println("mode " + cmd.getCommandName() + ": " + oneLine(ex));
            if (System.getenv("MODE_DEBUG") != null) ex.printStackTrace(cmd.getErr());
            return 1;
        });
        return cl;
    }

    private static String qualifiedName(CommandLine cmd) {
        return cmd.getParent() == null
                ? cmd.getCommandName()
                : qualifiedName(cmd.getParent()) + " " + cmd.getCommandName();
    }

    static String oneLine(Throwable ex) {
        String msg = ex.getMessage();
        return msg == null ? ex.getClass().getSimpleName() : msg.replace('\n', ' ');
    }

    public static void main(String[] args) {
        // library warnings (System.Logger -> java.util.logging) as one line each: "WARNING: message"
        if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
            System.setProperty("java.util.logging.SimpleFormatter.format", "%4$s: %5$s%6$s%n");
        }
        System.exit(commandLine().execute(args));
    }
}
