"""The web console (`hyp console`): the stack's services, Pub/Sub, detector, anomalies, models, warehouse."""
