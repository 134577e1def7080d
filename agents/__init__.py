"""Actor-critic agents trained on many environments at once: the CoinRun task agent (game reward) and
the AutoExplore agent (world-model uncertainty reward) share this model, its losses and its trainer.

    actor_critic.py   conv encoder + LSTM cell + policy/value heads (one construction path)
    returns.py        GAE / lambda-returns
    rollout.py        collection into a rollout and sequence batches with their starting LSTM state
    rewards.py        reward sources: `env` (the game's reward), `none` (and, later, `world_model`)
    losses.py         PPO (clipped) or plain actor-critic policy gradient, value loss, entropy bonus
    trainer.py        Lightning Fabric loop: collect, train, log JSONL, checkpoint, resume
    checkpoint.py     safetensors + yaml checkpoints `last` and `best_reward`
    evaluate.py       mean return on unseen CoinRun levels beside the random agent
    cli.py            `python run.py agent train|eval ...`
"""
