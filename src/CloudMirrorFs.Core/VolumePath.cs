using System.Text;

namespace CloudMirrorFs;

/// <summary>Volume-relative paths: '/'-separated, no leading slash, "" for the root. Validated once, here.</summary>
public static class VolumePath
{
    /// <summary>Throws <see cref="MirrorException"/> (InvalidPath) unless <paramref name="path"/> is a valid volume path.</summary>
    public static void Validate(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0)
        {
            return;
        }
        if (path[0] == '/' || path[^1] == '/')
        {
            throw Invalid(path, "must be relative, without a leading or trailing '/'");
        }
        foreach (Range r in path.AsSpan().Split('/'))
        {
            ReadOnlySpan<char> c = path.AsSpan(r);
            if (c.Length == 0 || c is "." || c is "..")
            {
                throw Invalid(path, "empty, '.' and '..' components are not allowed");
            }
            if (c.Contains('\0') || (OperatingSystem.IsWindows() && c.Contains('\\')))
            {
                throw Invalid(path, "contains a forbidden character");
            }
            if (Encoding.UTF8.GetByteCount(c) > 255)
            {
                throw Invalid(path, "a component is longer than 255 bytes");
            }
        }
    }

    /// <summary>The parent's path ("" for a top-level name).</summary>
    public static string Parent(string path)
    {
        int i = path.LastIndexOf('/');
        return i < 0 ? "" : path[..i];
    }

    /// <summary>The last component.</summary>
    public static string Name(string path) => path[(path.LastIndexOf('/') + 1)..];

    /// <summary>Joins a directory path and a child name.</summary>
    public static string Combine(string directory, string name) => directory.Length == 0 ? name : directory + "/" + name;

    private static MirrorException Invalid(string path, string why) => new(MirrorError.InvalidPath, $"invalid path '{path}': {why}");
}
