"""Association (costs + Hungarian), Kalman box filter and the multi-object tracker."""
