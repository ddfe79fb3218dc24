// Filled by issue 9.
