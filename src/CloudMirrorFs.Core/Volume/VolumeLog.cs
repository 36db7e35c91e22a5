using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Volume;

/// <summary>Source-generated log messages of the volume manager.</summary>
internal static partial class VolumeLog
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "read repair: facet {Facet} rewritten at {Path} offset {Offset} ({Length} bytes)")]
    public static partial void LogRepair(this ILogger logger, string facet, string path, long offset, int length);
}
