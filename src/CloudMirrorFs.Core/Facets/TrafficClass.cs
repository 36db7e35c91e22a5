namespace CloudMirrorFs.Facets;

/// <summary>Which kind of traffic the current flow of work is: a resync's copy, or replication (the default).</summary>
public static class TrafficClass
{
    private static readonly AsyncLocal<bool> s_resync = new();

    /// <summary>True inside <see cref="Resync"/>.</summary>
    public static bool IsResync => s_resync.Value;

    /// <summary>Marks the work started in this scope (and the tasks it starts) as resync traffic.</summary>
    public static Scope Resync()
    {
        bool old = s_resync.Value;
        s_resync.Value = true;
        return new Scope(old);
    }

    /// <summary>Restores the previous class when disposed.</summary>
    public readonly struct Scope(bool previous) : IDisposable
    {
        /// <inheritdoc />
        public void Dispose() => s_resync.Value = previous;
    }
}
