"""What the Step Functions tasks call."""
