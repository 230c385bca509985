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
            ImportGgufCommand.class,
            ExportHfCommand.class,
            GenerateCommand.class
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
            OutOfMemoryError oom = outOfMemory(ex);
            cmd.getErr()
                    .println(
                            "mode " + cmd.getCommandName() + ": " + (oom != null ? outOfMemoryLine(oom) : oneLine(ex)));
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

    /** The OutOfMemoryError in the causes of {@code ex} (an error of a worker thread arrives wrapped), or null. */
    private static OutOfMemoryError outOfMemory(Throwable ex) {
        for (Throwable t = ex; t != null; t = t.getCause()) if (t instanceof OutOfMemoryError oom) return oom;
        return null;
    }

    /** What the user reads when the JVM ran out of memory despite the estimate before allocation. */
    static String outOfMemoryLine(OutOfMemoryError e) {
        Runtime rt = Runtime.getRuntime();
        return String.format(
                java.util.Locale.ROOT,
                "out of memory (%s) with a heap of at most %.1f GiB; use a smaller --batch (or --seq), or give the JVM "
                        + "more heap, e.g. MODE_JAVA_OPTS=-Xmx%dg",
                e.getMessage() == null ? "OutOfMemoryError" : e.getMessage(),
                rt.maxMemory() / (double) (1L << 30),
                Math.max(2, 2 * (rt.maxMemory() >> 30)));
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
        // the last resort: an OutOfMemoryError that escapes a command, or ends another thread, is one line, no trace
        Thread.setDefaultUncaughtExceptionHandler((t, e) -> {
            OutOfMemoryError oom = outOfMemory(e);
            if (oom == null) { // what the JVM prints without a handler
                System.err.print("Exception in thread \"" + t.getName() + "\" ");
                e.printStackTrace();
                return;
            }
            System.err.println("mode: " + outOfMemoryLine(oom));
            Runtime.getRuntime().halt(1);
        });
        int code;
        try {
            code = commandLine().execute(args);
        } catch (OutOfMemoryError e) {
            System.err.println("mode: " + outOfMemoryLine(e));
            code = 1;
        }
        System.exit(code);
    }
}
