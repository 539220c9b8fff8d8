// Browser tests of the web UI: Debian's Chromium (headless) driven by Playwright against
// a real wharf-core the tests start themselves (tests/support.ts). Run by CTest
// (tests/integration/CMakeLists.txt) with WHARF_CORE_BIN and friends set.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: 'tests',
  timeout: 60_000,
  workers: 1,
  reporter: [['list']],
  outputDir: process.env.WHARF_UI_TEST_OUT || '/tmp/wharf-ui-test-results',
  use: {
    browserName: 'chromium',
    launchOptions: { executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] },
    headless: true,
  },
});
