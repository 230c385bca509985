/**
 * Llama-style layers with explicit forward and backward passes.
 *
 * <p>Contract ({@link ai.mode.model.nn.Layer}): {@code y = forward(x [B,T,D])}, later {@code dx = backward(dy)};
 * each layer saves what its backward needs in its own {@link ai.mode.model.nn.BufferPool}, accumulates into the
 * gradients of its trainable {@link ai.mode.model.nn.Parameter}s (frozen ones have no gradient buffer and cost no
 * weight-gradient work) and always returns the input gradient. Parameters carry Hugging Face Llama names and
 * {@code [out, in]} linear weights. {@link ai.mode.model.nn.CausalLm} composes embedding, any list of layers,
 * final norm and LM head; {@link ai.mode.model.nn.LlamaModel} is the backbone built from
 * {@link ai.mode.model.nn.DecoderLayer}s. Nothing here branches on the backend.
 */
package ai.mode.model.nn;
