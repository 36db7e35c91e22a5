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

    /// <summary>The longest symbolic link target accepted, in UTF-8 bytes (PATH_MAX less its terminating NUL).</summary>
    internal const int MaxLinkTargetBytes = 4095;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Throws <see cref="MirrorException"/> (InvalidArgument) unless <paramref name="target"/> can be a symbolic link's
    /// target: non-empty, no NUL, valid UTF-16 (so its UTF-8 bytes round-trip), at most <see cref="MaxLinkTargetBytes"/>
    /// bytes. Relative or absolute, the target is stored verbatim and never resolved by the engine.
    /// </summary>
    internal static void ValidateLinkTarget(string target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (target.Length == 0)
        {
            throw new MirrorException(MirrorError.InvalidArgument, "a symbolic link target must not be empty");
        }
        if (target.Contains('\0'))
        {
            throw new MirrorException(MirrorError.InvalidArgument, "a symbolic link target must not contain NUL");
        }
        int bytes;
        try
        {
            bytes = StrictUtf8.GetByteCount(target);
        }
        catch (EncoderFallbackException e)
        {
            throw new MirrorException(MirrorError.InvalidArgument, "a symbolic link target must be valid Unicode (it holds a lone surrogate)", e);
        }
        if (bytes > MaxLinkTargetBytes)
        {
            throw new MirrorException(MirrorError.InvalidArgument, $"a symbolic link target is at most {MaxLinkTargetBytes} bytes of UTF-8 ({bytes} given)");
        }
    }

    /// <summary>The parent's path ("" for a top-level name).</summary>
    public static string Parent(string path)
    {
        int i = path.LastIndexOf('/');
        return i < 0 ? "" : path[..i];
    }

    /// <summary>True when <paramref name="path"/> is <paramref name="ancestor"/> or lies inside it.</summary>
    public static bool IsSameOrUnder(string path, string ancestor)
        => ancestor.Length == 0
           || (path.StartsWith(ancestor, StringComparison.Ordinal) && (path.Length == ancestor.Length || path[ancestor.Length] == '/'));

    /// <summary>The last component of <paramref name="path"/>.</summary>
    public static string Name(string path) => path[(path.LastIndexOf('/') + 1)..];

    /// <summary>Joins a directory path and a child name.</summary>
    public static string Combine(string directory, string name) => directory.Length == 0 ? name : directory + "/" + name;

    private static MirrorException Invalid(string path, string why) => new(MirrorError.InvalidPath, $"invalid path '{path}': {why}");
}
