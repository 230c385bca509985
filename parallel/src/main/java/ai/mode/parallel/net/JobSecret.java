package ai.mode.parallel.net;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The per-job secret that authenticates every process at the rendezvous (issue 14). Every process of a run gets
 * the same secret, from the environment variable {@value #VARIABLE} (set once before the launcher; torchrun and
 * SLURM pass the environment to every rank) or from a file only its owner can read, named by
 * {@value #FILE_VARIABLE}. The secret never goes over the wire: a process proves that it knows it by an
 * HMAC-SHA256 over both sides' fresh nonces and the HELLO's fields, and rank 0's server proves the same to the
 * process first (a challenge-response in both directions, so neither a stranger claiming a rank nor a program
 * listening in rank 0's place learns anything it can reuse). {@link #toString()} never shows the secret.
 */
public final class JobSecret {
    /** The environment variable that holds the secret itself. */
    public static final String VARIABLE = "MODE_JOB_SECRET";

    /** The environment variable that names a file holding the secret (readable by its owner only). */
    public static final String FILE_VARIABLE = "MODE_JOB_SECRET_FILE";

    /** The fewest characters a secret may have (32 hex digits, 128 bits). */
    public static final int MIN_CHARS = 32;

    /** Bytes of each nonce and each proof. */
    static final int NONCE_BYTES = 32, PROOF_BYTES = 32;

    private static final String HOW =
            "make one with `export " + VARIABLE + "=$(openssl rand -hex 32)` before starting the launcher (torchrun "
                    + "and SLURM pass it to every rank), or write it to a file only you can read (chmod 600) and set "
                    + FILE_VARIABLE + " to its path";

    private static final SecureRandom RANDOM = new SecureRandom();

    private final SecretKeySpec key;

    private JobSecret(byte[] secret) {
        this.key = new SecretKeySpec(secret, "HmacSHA256");
    }

    /**
     * The secret {@code text} (at least {@value #MIN_CHARS} characters after stripping; its UTF-8 bytes are the
     * HMAC key); else a one-line error saying how to make one. {@code source} names where it came from.
     */
    public static JobSecret of(String text, String source) {
        String s = text == null ? "" : text.strip();
        if (s.length() < MIN_CHARS)
            throw new IllegalArgumentException(source + " holds a job secret of " + s.length()
                    + " characters, fewer than " + MIN_CHARS + "; " + HOW);
        return new JobSecret(s.getBytes(StandardCharsets.UTF_8));
    }

    /**
     * The secret of a multi-process run, from {@value #VARIABLE} or the file named by {@value #FILE_VARIABLE}
     * (not both); without either, a one-line error that says how to make one.
     */
    public static JobSecret from(Map<String, String> env) {
        String text = env.get(VARIABLE), file = env.get(FILE_VARIABLE);
        boolean hasText = text != null && !text.isBlank(), hasFile = file != null && !file.isBlank();
        if (hasText && hasFile)
            throw new IllegalArgumentException(
                    "both " + VARIABLE + " and " + FILE_VARIABLE + " are set; unset one of them on every process");
        if (hasText) return of(text, VARIABLE);
        if (hasFile) return fromFile(Path.of(file.strip()));
        throw new IllegalArgumentException("a multi-process run needs a job secret that authenticates its processes, "
                + "and neither " + VARIABLE + " nor " + FILE_VARIABLE + " is set; " + HOW);
    }

    /**
     * The secret in {@code file}, which must be a regular file owned by this user and readable or writable by no
     * one else (on file systems with POSIX permissions); else a one-line error naming the fix.
     */
    public static JobSecret fromFile(Path file) {
        String where = FILE_VARIABLE + " file " + file;
        try {
            if (!Files.isRegularFile(file))
                throw new IllegalArgumentException(where + " does not exist or is not a regular file; " + HOW);
            if (Files.getFileStore(file).supportsFileAttributeView("posix")) {
                Set<PosixFilePermission> perms = Files.getPosixFilePermissions(file);
                Set<PosixFilePermission> others = EnumSet.copyOf(perms);
                others.removeAll(EnumSet.of(
                        PosixFilePermission.OWNER_READ,
                        PosixFilePermission.OWNER_WRITE,
                        PosixFilePermission.OWNER_EXECUTE));
                if (!others.isEmpty())
                    throw new IllegalArgumentException(where + " is open to other users ("
                            + PosixFilePermissions.toString(perms) + "); run chmod 600 " + file);
                String owner = Files.getOwner(file).getName(), me = System.getProperty("user.name");
                if (me != null && !owner.equals(me))
                    throw new IllegalArgumentException(
                            where + " belongs to " + owner + ", not to " + me + "; use a secret file of your own");
            }
            return of(Files.readString(file, StandardCharsets.UTF_8), where);
        } catch (IOException e) {
            throw new IllegalArgumentException(
                    "cannot read " + where + " (" + e.getMessage() + "); check the path and its permissions", e);
        }
    }

    /** A fresh random nonce. */
    static byte[] nonce() {
        byte[] n = new byte[NONCE_BYTES];
        RANDOM.nextBytes(n);
        return n;
    }

    /**
     * The proof of {@code role} ("server" or "client"): HMAC-SHA256 under the secret over the role, the nonce of the
     * side that checks the proof, then the prover's own nonce, and the HELLO's fields. The role and the order of the
     * nonces make a proof useless in any other position, and fresh nonces make every proof useless later.
     */
    byte[] proof(String role, byte[] checkerNonce, byte[] proverNonce, int rank, int worldSize, int devices) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(key);
            mac.update(("mode-j rendezvous " + role).getBytes(StandardCharsets.US_ASCII));
            mac.update(checkerNonce);
            mac.update(proverNonce);
            for (int v : new int[] {rank, worldSize, devices}) {
                mac.update(new byte[] {(byte) (v >>> 24), (byte) (v >>> 16), (byte) (v >>> 8), (byte) v});
            }
            return mac.doFinal();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is not available in this JVM: " + e.getMessage(), e);
        }
    }

    /** Whether {@code claimed} is the proof {@link #proof} computes (compared in constant time). */
    boolean verify(
            byte[] claimed,
            String role,
            byte[] checkerNonce,
            byte[] proverNonce,
            int rank,
            int worldSize,
            int devices) {
        return MessageDigest.isEqual(claimed, proof(role, checkerNonce, proverNonce, rank, worldSize, devices));
    }

    @Override
    public String toString() {
        return "JobSecret[hidden]";
    }
}
