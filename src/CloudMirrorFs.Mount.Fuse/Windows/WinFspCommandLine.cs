using System.Globalization;
using System.Text;

namespace CloudMirrorFs.Mount.Windows;

/// <summary>
/// The command line handed to fsp_fuse3_new. WinFsp parses it as libfuse does ("-o a=b,c=d"), except that a
/// backslash takes the next character literally (src/dll/fuse/fuse_opt.c), so values are escaped.
/// </summary>
internal static class WinFspCommandLine
{
    /// <summary>
    /// argv for <paramref name="options"/>: uid=-1,gid=-1 (every file belongs to the mounting Windows user, whom WinFsp
    /// maps to a uid itself), FileSystemName=cmfs (Windows shows "FUSE-cmfs"), volname (the label), FileInfoTimeout
    /// (the attribute cache, from <see cref="FuseMountOptions.CacheTimeout"/>), ThreadCount (dispatcher threads, from
    /// <see cref="FuseMountOptions.MaxThreads"/>) and, for a drive letter, VolumePrefix=/cmfs/NAME: the drive is then
    /// WinFsp's network device, shown as the network drive \\cmfs\NAME.
    /// </summary>
    public static string[] Arguments(FuseMountOptions options, bool driveLetter)
    {
        ArgumentNullException.ThrowIfNull(options);
        var o = new List<string>
        {
            "uid=-1",
            "gid=-1",
            "FileSystemName=cmfs",
            "volname=" + Escape(options.VolumeName),
            "FileInfoTimeout=" + ((long)Math.Max(0, options.CacheTimeout.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture),
            "ThreadCount=" + Math.Max(2, options.MaxThreads).ToString(CultureInfo.InvariantCulture),
        };
        if (driveLetter)
        {
            o.Add("VolumePrefix=" + Escape("/cmfs/" + ShareName(options.VolumeName)));
        }
        return ["cmfs", "-o", string.Join(',', o)];
    }

    /// <summary>Escapes a value inside "-o": a backslash or comma gets a backslash before it.</summary>
    public static string Escape(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace(",", "\\,", StringComparison.Ordinal);
    }

    /// <summary>The share part of \\cmfs\NAME: path separators and characters Windows refuses in a name become '_'.</summary>
    public static string ShareName(string volumeName)
    {
        ArgumentNullException.ThrowIfNull(volumeName);
        var name = new StringBuilder(volumeName.Length);
        foreach (char c in volumeName)
        {
            name.Append(c is '\\' or '/' or ':' or '*' or '?' or '"' or '<' or '>' or '|' || char.IsControl(c) ? '_' : c);
        }
        return name.Length == 0 ? "cmfs" : name.ToString();
    }
}
