"""env_actor: run learned action-chunking policies on ROS 2 robots."""
