package ai.mode.model.mode;

import ai.mode.model.LlamaConfig;
import ai.mode.model.RopeScaling;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * Identifies a backbone so that expert files trained on one backbone are rejected on another: a SHA-256 of the model
 * shape and one of the weights' exact bits.
 *
 * @param configHash  SHA-256 (hex) of the backbone's shape: vocab, width, layers, heads, kv heads, ffn, max seq,
 *                    rope theta, norm eps, tied embeddings
 * @param weightsHash SHA-256 (hex) of every backbone parameter's name, shape and float32 bits, in model order
 */
public record BackboneFingerprint(String configHash, String weightsHash) {

    /** The fingerprint of a backbone's config and parameters. */
    public static BackboneFingerprint of(LlamaConfig cfg, List<Parameter> backboneParams) {
        MessageDigest md = sha256();
        for (Parameter p : backboneParams) {
            Backend b = p.value().backend();
            md.update(p.name().getBytes(StandardCharsets.UTF_8));
            for (int s : p.shape()) md.update(ByteBuffer.allocate(4).putInt(s).array());
            float[] v = b.toHostFloats(p.value());
            ByteBuffer buf = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            buf.asFloatBuffer().put(v);
            md.update(buf.array());
        }
        return new BackboneFingerprint(configHash(cfg), HexFormat.of().formatHex(md.digest()));
    }

    /** SHA-256 (hex) of the model shape. */
    public static String configHash(LlamaConfig c) {
        String canon = "llama vocab=" + c.vocabSize() + " hidden=" + c.hiddenSize() + " layers=" + c.numLayers()
                + " heads=" + c.numHeads() + " kv_heads=" + c.numKvHeads() + " ffn=" + c.intermediateSize()
                + " max_seq=" + c.maxSeqLen() + " rope_theta=" + Float.floatToIntBits(c.ropeTheta())
                + " eps=" + Float.floatToIntBits(c.rmsNormEps()) + " tied=" + c.tieEmbeddings()
                + ropeScaling(c.ropeScaling());
        return HexFormat.of().formatHex(sha256().digest(canon.getBytes(StandardCharsets.UTF_8)));
    }

    /** The scaling's part of the canonical shape: empty for plain RoPE, so hashes of unscaled backbones stay as they were. */
    private static String ropeScaling(RopeScaling s) {
        return switch (s) {
            case RopeScaling.None n -> "";
            case RopeScaling.Linear l -> " rope_scaling=linear factor=" + Double.doubleToLongBits(l.factor());
            case RopeScaling.Llama3 l ->
                " rope_scaling=llama3 factor=" + Double.doubleToLongBits(l.factor()) + " low="
                        + Double.doubleToLongBits(l.lowFreqFactor()) + " high="
                        + Double.doubleToLongBits(l.highFreqFactor()) + " original=" + l.originalMaxPositions();
        };
    }

    /** The first 12 hex digits, for messages. */
    public static String shortHash(String hex) {
        return hex.length() <= 12 ? hex : hex.substring(0, 12);
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JVM has no SHA-256", e);
        }
    }
}
