"""The status page: a read-only web view of one rollout for people off the bastion (`warroom page PLAN`)."""
