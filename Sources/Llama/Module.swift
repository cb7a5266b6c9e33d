// Llama module.
