// The check runner of the browser tests, as checks.py is the Python scripts': each check
// prints `ok` or `FAIL`, `section` turns a thrown error (a Playwright timeout) into one
// failure and goes on, `report` prints the totals and exits 1 on any failure.
let passed = 0;
let failed = 0;

export function check(name, ok) {
  if (ok) passed += 1;
  else failed += 1;
  console.log(`${ok ? "ok  " : "FAIL"} ${name}`);
}

export async function section(name, body) {
  try {
    await body();
  } catch (e) {
    check(`${name}: ${e.message.split("\n")[0]}`, false);
  }
}

export function report(label) {
  console.log(`${label}: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
