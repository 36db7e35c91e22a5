namespace CloudMirrorFs.Mount.FileSystem;

/// <summary>Times as both FUSE layers carry them: seconds and nanoseconds since the Unix epoch (one conversion for both).</summary>
internal static class UnixTime
{
    private const long MaxSeconds = 253_402_300_799L; // 9999-12-31T23:59:59Z, the last second DateTime holds
    private const long MinSeconds = -62_135_596_800L; // 0001-01-01T00:00:00Z

    /// <summary>Splits a time into whole seconds and nanoseconds (nanoseconds always 0..999,999,999).</summary>
    public static (long Seconds, long Nanoseconds) Split(DateTime utc)
    {
        long ticks = utc.ToUniversalTime().Ticks - DateTime.UnixEpoch.Ticks;
        long seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out long rest);
        if (rest < 0)
        {
            seconds--;
            rest += TimeSpan.TicksPerSecond;
        }
        return (seconds, rest * 100);
    }

    /// <summary>The time of seconds and nanoseconds; false when it is outside what the volume can store (EINVAL).</summary>
    public static bool TryJoin(long seconds, long nanoseconds, out DateTime utc)
    {
        utc = default;
        if (seconds is < MinSeconds or > MaxSeconds || nanoseconds is < 0 or > 999_999_999)
        {
            return false;
        }
        utc = DateTime.UnixEpoch.AddTicks((seconds * TimeSpan.TicksPerSecond) + (nanoseconds / 100));
        return true;
    }
}
