"""The Cloud Run inference processing service: Pub/Sub push in, endpoint scoring, warehouse rows out."""
