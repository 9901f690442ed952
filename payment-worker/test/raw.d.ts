// Vite's ?raw imports: a file's text (the tests read the payment worker's own config this way).
declare module "*?raw" {
  const text: string;
  export default text;
}
