/**
 * Training: {@link ai.mode.model.train.Trainer} (micro-batches, gradient accumulation,
 * {@link ai.mode.model.train.AdamW} with global-norm clipping on a warm-up + cosine
 * {@link ai.mode.model.train.LrSchedule}, periodic validation and checkpoints, exact resume, divergence stop),
 * pluggable parts ({@link ai.mode.model.train.ParameterSelection} for what trains,
 * {@link ai.mode.model.train.TokenStream} for data, {@link ai.mode.model.train.Checkpointing} for what is saved,
 * {@link ai.mode.model.train.Trainer.Listener} for progress and metrics), and the pretraining and evaluation
 * pipelines behind {@code mode pretrain} and {@code mode eval}.
 */
package ai.mode.model.train;
