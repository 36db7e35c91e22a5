namespace CloudMirrorFs.Tests.Support;

/// <summary>Polls a condition that background work (a resync, a replicator) makes true, failing the test after a deadline.</summary>
internal static class Wait
{
    public static async Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"timed out waiting for: {what}");
            }
            await Task.Delay(20);
        }
    }
}
