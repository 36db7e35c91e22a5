namespace CloudMirrorFs.Mount;

/// <summary>How the drive is presented to the OS (both platforms).</summary>
public sealed record FuseMountOptions
{
    /// <summary>The name shown as the mount's source (df, mount, Explorer).</summary>
    public string VolumeName { get; init; } = "cmfs";

    /// <summary>Let other users of the machine use the mount (Linux: needs root or user_allow_other in /etc/fuse.conf).</summary>
    public bool AllowOther { get; init; }

    /// <summary>Upper bound of the threads serving requests.</summary>
    public int MaxThreads { get; init; } = 10;

    /// <summary>
    /// How long the kernel may cache attributes and names. Every change to the volume passes through this mount (one
    /// writer per volume), and the kernel updates its own cache for the changes it sends, so a cached answer can only
    /// be stale if someone edits the local facet's folder behind the drive's back, which is not supported.
    /// </summary>
    public TimeSpan CacheTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Largest write request in bytes (the kernel caps it at its max_pages limit, 1 MiB by default).</summary>
    public int MaxWrite { get; init; } = 1 << 20;
}
