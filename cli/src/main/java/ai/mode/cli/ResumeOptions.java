package ai.mode.cli;

import java.util.List;
import java.util.Set;
import picocli.CommandLine.Option;

/**
 * {@code --resume} and {@code --allow-changed}, shared by every command that trains with checkpoints (pretrain,
 * expert, compose, baseline), as a picocli mixin. What a resume compares, and which changes it refuses, warns about
 * or lets {@code --allow-changed} through, is docs/checkpoints.md's table.
 */
public final class ResumeOptions {
    @Option(
            names = "--resume",
            description = "Continue the run in OUT from its latest checkpoint (exactly where it stopped).")
    public boolean resume;

    @Option(
            names = "--allow-changed",
            split = ",",
            paramLabel = "SETTING",
            description = "With --resume: accept these changed settings (lr, warmup, warmup-frac, accum, or all),"
                    + " which a resume otherwise refuses because the rest of the run would differ from an"
                    + " uninterrupted one.")
    public List<String> allowChanged;

    /** The accepted settings, after checking that they come with {@code --resume}. */
    public Set<String> allowChanged() {
        if (allowChanged == null || allowChanged.isEmpty()) return Set.of();
        if (!resume)
            throw new IllegalArgumentException(
                    "--allow-changed applies only to a resumed run; add --resume, or leave --allow-changed out");
        return Set.copyOf(allowChanged);
    }
}
