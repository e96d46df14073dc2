output "queue_url" {
  description = "Send cycle requests here."
  value       = aws_sqs_queue.requests.id
}

output "dead_letter_queue_url" {
  description = "Requests that could not be read after 3 receives."
  value       = aws_sqs_queue.dead_letter.id
}

output "results_bucket" {
  description = "Results under <tenant>/<request>/."
  value       = aws_s3_bucket.results.bucket
}
