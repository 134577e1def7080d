"""Play the world model: `WorldModelEnv` (gymnasium) and the browser player (`python run.py play`)."""
