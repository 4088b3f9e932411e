"""Model families used by tests: the real abalone family with injected failures."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from trainable.contract import Objective
from trainable.families.abalone import SCHEMA
from trainable.families.mlp import TabularMLP
from trainable.tables import Splits


class SecondTrialFails(TabularMLP):
    """Like the abalone family, except that trial-0002 always raises."""

    def train(
        self,
        config: Mapping[str, Any],
        data: Splits,
        objective: Objective,
        stop_epochs: Collection[int] = (),
    ) -> None:
        from ray import tune

        if tune.get_context().get_trial_name().endswith("0002"):
            raise RuntimeError("injected failure in trial-0002")
        super().train(config, data, objective, stop_epochs)


class CrashesOnceAfterFirstCheckpoint(TabularMLP):
    """Trains one epoch (checkpointing it), then raises; the retry resumes from that checkpoint."""

    crash_after_epochs = 1

    def train(
        self,
        config: Mapping[str, Any],
        data: Splits,
        objective: Objective,
        stop_epochs: Collection[int] = (),
    ) -> None:
        from ray import tune

        if tune.get_checkpoint() is None:
            epochs = self.crash_after_epochs
            super().train({**config, "epochs": epochs}, data, objective, stop_epochs)
            raise RuntimeError(f"injected crash after epoch {epochs} (checkpointed)")
        super().train(config, data, objective, stop_epochs)


second_trial_fails = SecondTrialFails("abalone", "regression", SCHEMA, "builtin:abalone")
crashes_once_after_first_checkpoint = CrashesOnceAfterFirstCheckpoint(
    "abalone", "regression", SCHEMA, "builtin:abalone"
)


def weights_digest(model: Any) -> str:
    """A fingerprint of a Keras model's weights."""
    import hashlib

    return hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()


#: The validation RMSE each epoch reports in :class:`CrashesAfterABestEpoch`: best at epoch 2.
SCRIPTED_VAL_RMSE = {1: 3.0, 2: 1.0, 3: 2.0, 4: 2.0, 5: 2.0}


class CrashesAfterABestEpoch(CrashesOnceAfterFirstCheckpoint):
    """Reports :data:`SCRIPTED_VAL_RMSE` instead of the real validation RMSE; trains 3 epochs
    (checkpointed at the third, whose best is the second), then raises; the retry goes on to
    the configured epochs. Writes the weights' digests to ``config["probe_dir"]``: after each
    epoch of the first attempt (``epoch-N``) and when the retry starts (``resumed``)."""

    crash_after_epochs = 3

    def callbacks(self, config: Mapping[str, Any]) -> list[Any]:
        import os

        import keras

        folder = config["probe_dir"]

        class Script(keras.callbacks.Callback):
            def on_train_begin(self, logs: Any = None) -> None:
                from ray import tune

                if tune.get_checkpoint() is not None:
                    with open(os.path.join(folder, "resumed"), "w") as fh:
                        fh.write(weights_digest(self.model))

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                logs["val_rmse"] = SCRIPTED_VAL_RMSE[epoch + 1]
                with open(os.path.join(folder, f"epoch-{epoch + 1}"), "w") as fh:
                    fh.write(weights_digest(self.model))

        return [Script()]


crashes_after_a_best_epoch = CrashesAfterABestEpoch(
    "abalone", "regression", SCHEMA, "builtin:abalone"
)
