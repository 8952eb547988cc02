"""trainlab: train neural networks fast, see what happened, and learn why a run went wrong.

    import trainlab as tl
    run = tl.fit(net, (X, y), test=(X_test, y_test), optimizer="sgd", lr=0.01, epochs=20)
    run.history, run.diagnosis, run.plot(), run.evaluate(), run.predict(X_new)
    tl.lr_find(net, (X, y), optimizer="sgd").suggestion
    print(tl.summary(net, (1, 28, 28)))   # each layer's output shape and parameters
    tl.load("runs/<name>", model=MyNet())
    run.fix()   # or tl.fix("runs/<name>"): the verdict's top remedy as a new run, judged before → after
"""
__version__ = "0.1.0"

from trainlab.errors import CheckpointError, ConfigError, DataError, TrainingError, TrainlabError  # noqa: E402

__all__ = ["__version__", "fit", "fix", "lr_find", "load", "summary", "Run", "Callback", "TrainState", "TrainlabError", "ConfigError",
           "DataError", "CheckpointError", "TrainingError"]


def __getattr__(name: str):  # the API pulls in torch; ``import trainlab`` alone stays light
    if name in ("fit", "lr_find", "load", "summary", "Run"):
        from trainlab import api

        return getattr(api, name)
    if name == "fix":  # the function behind `trainlab fix`
        from trainlab.remedy import fix

        return fix
    if name in ("Callback", "TrainState"):
        from trainlab.train import callbacks

        return getattr(callbacks, name)
    raise AttributeError(f"module 'trainlab' has no attribute {name!r}")
