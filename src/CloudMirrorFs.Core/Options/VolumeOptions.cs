namespace CloudMirrorFs.Options;

/// <summary>Everything needed to open a volume; built from <c>cmfs.json</c> and validated once by the host.</summary>
public sealed record VolumeOptions
{
    /// <summary>The default block size: 256 KiB (see docs/block-size.md for the measurement behind it).</summary>
    public const int DefaultBlockSize = 256 * 1024;

    /// <summary><c>volume.name</c>: a label for logs and status.</summary>
    public string Name { get; init; } = "volume";

    /// <summary><c>volume.stateDir</c>: absolute path of the folder holding everything the volume keeps.</summary>
    public required string StateDir { get; init; }

    /// <summary><c>volume.blockSize</c>: bytes per block (a power of two, 4 KiB to 64 MiB).</summary>
    public int BlockSize { get; init; } = DefaultBlockSize;

    /// <summary>
    /// <c>volume.degradedTimeout</c>: with no working local facet, how long a read or write waits while the remote
    /// it depends on stays unreachable before it fails (a remote that is reachable but behind is waited for).
    /// </summary>
    public TimeSpan DegradedTimeout { get; init; } = DefaultDegradedTimeout;

    /// <summary>60 s: longer than a link's usual hiccups and a cloud service's retries, short enough that a program gets an error, not a hang.</summary>
    public static readonly TimeSpan DefaultDegradedTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// <c>volume.caseInsensitiveNames</c>: names that differ only in case are the same name, as on NTFS (the default on
    /// Windows, where the local facet is on NTFS): the case a name was created with is kept, a lookup in any case finds
    /// it, and a second name differing only in case is refused as existing. Off (POSIX names) elsewhere. A
    /// case-insensitive local folder (NTFS, vfat, exFAT) needs it on: otherwise two such names are two files in the table
    /// and one file in the folder, the second overwriting the first.
    /// </summary>
    public bool CaseInsensitiveNames { get; init; } = OperatingSystem.IsWindows();

    /// <summary><c>mount.path</c>: where the drive is mounted; null when not configured.</summary>
    public string? MountPath { get; init; }

    /// <summary>Take object-store remotes over even when another live cmfs claims them (not a config key: <c>--force</c>).</summary>
    public bool ForceClaim { get; init; }

    /// <summary>The <c>queue</c> section.</summary>
    public QueueOptions Queue { get; init; } = new();

    /// <summary>The <c>facets</c> list, in configuration order.</summary>
    public required IReadOnlyList<FacetOptions> Facets { get; init; }

    /// <summary>The absolute path of the queue folder: <see cref="QueueOptions.Path"/> or <c>stateDir/queue</c>.</summary>
    public string QueuePath => Queue.Path ?? System.IO.Path.Combine(StateDir, "queue");
}
