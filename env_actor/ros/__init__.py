"""ROS 2 plumbing: the policy node and message conversions (no decisions live here)."""
