// Integration tests boot the whole app against a real database; browser tests drive Chromium.
jest.setTimeout(60_000);
