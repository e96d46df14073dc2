# The miyabi-aws fleet, as deploy/cloudformation/fleet.json makes it: cycle requests from
# EventBridge (events and a schedule) into SQS, worker tasks on ECS Fargate scaled on backlog
# per task (1 to var.max_tasks), results in S3.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  # Who may assume the execution and the task roles: ECS tasks.
  ecs_tasks_trust = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ecs-tasks.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_s3_bucket" "results" {
  bucket_prefix = "miyabi-results-"
}

resource "aws_s3_bucket_server_side_encryption_configuration" "results" {
  bucket = aws_s3_bucket.results.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "results" {
  bucket                  = aws_s3_bucket.results.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "results" {
  bucket = aws_s3_bucket.results.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "results" {
  bucket = aws_s3_bucket.results.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_sqs_queue" "dead_letter" {
  name_prefix               = "miyabi-requests-dlq-"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "requests" {
  name_prefix                = "miyabi-requests-"
  visibility_timeout_seconds = var.visibility_timeout
  message_retention_seconds  = 345600
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = 3
  })
}

resource "aws_cloudwatch_event_rule" "requests" {
  description = "Cycle requests put as events (source miyabi.requests, detail-type CycleRequest; the detail is the request)."
  event_pattern = jsonencode({
    source        = ["miyabi.requests"]
    "detail-type" = ["CycleRequest"]
  })
}

resource "aws_cloudwatch_event_target" "requests" {
  rule       = aws_cloudwatch_event_rule.requests.name
  target_id  = "RequestQueue"
  arn        = aws_sqs_queue.requests.arn
  input_path = "$.detail"
}

resource "aws_sqs_queue_policy" "requests" {
  queue_url = aws_sqs_queue.requests.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EventsSendRequests"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.requests.arn
      Condition = { ArnEquals = { "aws:SourceArn" = aws_cloudwatch_event_rule.requests.arn } }
    }]
  })
}

resource "aws_iam_role" "scheduler" {
  name_prefix = "miyabi-scheduler-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "scheduler.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id } }
    }]
  })
}

resource "aws_iam_role_policy" "scheduler" {
  role = aws_iam_role.scheduler.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sqs:SendMessage", Resource = aws_sqs_queue.requests.arn }]
  })
}

resource "aws_scheduler_schedule" "requests" {
  description         = "The scheduled cycle request."
  schedule_expression = var.schedule_expression
  flexible_time_window {
    mode = "OFF"
  }
  target {
    arn      = aws_sqs_queue.requests.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = var.scheduled_request
  }
}

resource "aws_ecs_cluster" "fleet" {
  name = "miyabi-fleet"
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "worker" {
  name_prefix       = "/miyabi/worker-"
  retention_in_days = 30
}

resource "aws_iam_role" "execution" {
  name_prefix        = "miyabi-execution-"
  assume_role_policy = local.ecs_tasks_trust
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

# The worker: may assume the tenant roles, work the request queue and write the results
# bucket; nothing else.
resource "aws_iam_role" "task" {
  name_prefix        = "miyabi-worker-"
  assume_role_policy = local.ecs_tasks_trust
}

resource "aws_iam_role_policy" "task" {
  role = aws_iam_role.task.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Sid = "AssumeTenantRoles", Effect = "Allow", Action = "sts:AssumeRole", Resource = var.tenant_role_arns },
      {
        Sid      = "WorkTheQueue"
        Effect   = "Allow"
        Action   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
        Resource = aws_sqs_queue.requests.arn
      },
      {
        Sid      = "WriteResults"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        Resource = "${aws_s3_bucket.results.arn}/*"
      },
      { Sid = "ListResults", Effect = "Allow", Action = "s3:ListBucket", Resource = aws_s3_bucket.results.arn },
    ]
  })
}

resource "aws_ecs_task_definition" "worker" {
  family                   = "miyabi-worker"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = "1024"
  memory                   = "2048"
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  runtime_platform {
    cpu_architecture        = "X86_64"
    operating_system_family = "LINUX"
  }
  container_definitions = jsonencode([{
    name        = "worker"
    image       = var.image_uri
    essential   = true
    stopTimeout = 120
    command = [
      "worker",
      "--queue-url", aws_sqs_queue.requests.id,
      "--results-bucket", aws_s3_bucket.results.bucket,
      "--region", data.aws_region.current.name,
      "--visibility-timeout", tostring(var.visibility_timeout),
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.worker.name
        "awslogs-region"        = data.aws_region.current.name
        "awslogs-stream-prefix" = "worker"
      }
    }
  }])
}

resource "aws_ecs_service" "worker" {
  name            = "miyabi-worker"
  cluster         = aws_ecs_cluster.fleet.id
  task_definition = aws_ecs_task_definition.worker.arn
  launch_type     = "FARGATE"
  desired_count   = 1
  network_configuration {
    assign_public_ip = false
    subnets          = var.subnets
    security_groups  = var.security_groups
  }
  # Target tracking owns the task count.
  lifecycle {
    ignore_changes = [desired_count]
  }
}

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${aws_ecs_cluster.fleet.name}/${aws_ecs_service.worker.name}"
  min_capacity       = 1
  max_capacity       = var.max_tasks
}

resource "aws_appautoscaling_policy" "backlog_per_task" {
  name               = "backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension
  resource_id        = aws_appautoscaling_target.worker.resource_id
  target_tracking_scaling_policy_configuration {
    target_value       = var.backlog_per_task
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    customized_metric_specification {
      metrics {
        id          = "visible"
        return_data = false
        metric_stat {
          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"
            dimensions {
              name  = "QueueName"
              value = aws_sqs_queue.requests.name
            }
          }
          stat = "Sum"
        }
      }
      metrics {
        id          = "tasks"
        return_data = false
        metric_stat {
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.fleet.name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.worker.name
            }
          }
          stat = "Average"
        }
      }
      metrics {
        id          = "backlog_per_task"
        label       = "Requests waiting per running task"
        expression  = "visible / IF(tasks > 0, tasks, 1)"
        return_data = true
      }
    }
  }
}
