// Reads the parameters (one JSON line on stdin) and prints one JSON line per word length.
let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const { text } = JSON.parse(input);
  const counts = {};
  for (const word of text.split(/\s+/).filter(Boolean)) {
    counts[word.length] = (counts[word.length] || 0) + 1;
  }
  for (const [length, count] of Object.entries(counts)) {
    console.log(JSON.stringify({ length: Number(length), count }));
  }
});
