"""ROS-free runtime core: decides which action goes out on which control tick."""
