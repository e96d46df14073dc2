variable "image_uri" {
  description = "The worker image (deploy/Dockerfile), for example <account>.dkr.ecr.<region>.amazonaws.com/miyabi-aws:0.1.0."
  type        = string
}

variable "tenant_role_arns" {
  description = "The roles the workers may assume in the tenants' accounts (wildcards allowed, for example arn:aws:iam::*:role/MiyabiAudit)."
  type        = list(string)
}

variable "subnets" {
  description = "Subnets of the worker tasks; they need a route to the AWS APIs (NAT gateway or VPC endpoints)."
  type        = list(string)
}

variable "security_groups" {
  description = "Security groups of the worker tasks (outbound HTTPS only)."
  type        = list(string)
}

variable "max_tasks" {
  description = "The most worker tasks."
  type        = number
  default     = 500
}

variable "backlog_per_task" {
  description = "Requests waiting per running task that target tracking holds: how many cycle times a request may wait."
  type        = number
  default     = 1
}

variable "visibility_timeout" {
  description = "Seconds a request stays invisible, and a claim or lease lives, without a heartbeat."
  type        = number
  default     = 3600
}

variable "schedule_expression" {
  description = "How often the scheduled request is sent."
  type        = string
  default     = "rate(15 minutes)"
}

variable "scheduled_request" {
  description = "The cycle request the schedule sends (schema/cycle_request.schema.json); <aws.scheduler.execution-id> makes each run's request id unique."
  type        = string
  default     = "{\"schema_version\":1,\"request_id\":\"scheduled-<aws.scheduler.execution-id>\",\"tenant_id\":\"scheduled\",\"regions\":[\"us-east-1\"],\"mode\":\"dry_run\"}"
}
