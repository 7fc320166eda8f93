// Browser tests start Chromium and the whole app.
jest.setTimeout(120_000);
