namespace CloudMirrorFs.Fsx;

/// <summary>The settings of one run, validated by <see cref="FsxCli"/> before the run starts.</summary>
internal sealed record FsxOptions
{
    /// <summary>The folder in the file system under test (full path).</summary>
    public required string UnderTest { get; init; }

    /// <summary>The plain reference folder (full path).</summary>
    public required string Reference { get; init; }

    /// <summary>How many random operations to apply.</summary>
    public long Ops { get; init; } = 100_000;

    /// <summary>The seed of every random choice and of the data written.</summary>
    public int Seed { get; init; }

    /// <summary>How many files (f0..fN-1) each tree holds.</summary>
    public int Files { get; init; } = 4;

    /// <summary>The largest size a file may reach.</summary>
    public long MaxSize { get; init; } = 256 * 1024;

    /// <summary>A file that receives one line per operation, or null.</summary>
    public string? LogPath { get; init; }
}
