// Stands in for react-devtools-core in the bundled console: Ink loads the real one only when
// DEV=true, but a bundle would otherwise import it at start-up (and it is not installed).
export default { initialize(): void {}, connectToDevTools(): void {} };
