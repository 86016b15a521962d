//! Array-count walks (see `guard`) for the group-coordination requests.

use crate::guard::{Result, Walker};

pub fn walk(w: &mut Walker, api_key: i16, v: i16) -> Result<()> {
    match api_key {
        11 => join_group(w, v),
        14 => sync_group(w, v),
        12 => {
            w.string()?;
            w.i32()?;
            w.string()?;
            if v >= 3 {
                w.string()?;
            }
            w.tags()
        }
        13 => leave_group(w, v),
        8 => offset_commit(w, v),
        9 => offset_fetch(w, v),
        16 => {
            if v >= 4 {
                w.each(|w| w.string())?;
            }
            if v >= 5 {
                w.each(|w| w.string())?;
            }
            w.tags()
        }
        15 => {
            w.each(|w| w.string())?;
            if v >= 3 {
                w.i8()?;
            }
            w.tags()
        }
        42 => {
            w.each(|w| w.string())?;
            w.tags()
        }
        47 => {
            w.string()?;
            w.each(|w| {
                w.string()?;
                w.each(|w| w.i32())
            })
        }
        68 => {
            w.string()?; // group id
            w.string()?; // member id
            w.i32()?;
            w.string()?; // instance id
            w.string()?; // rack id
            w.i32()?;
            w.each(|w| w.string())?;
            if v >= 1 {
                w.string()?;
            }
            w.string()?; // server assignor
            w.each(|w| {
                w.uuid()?;
                w.each(|w| w.i32())?;
                w.tags()
            })?;
            w.tags()
        }
        69 => {
            w.each(|w| w.string())?;
            w.i8()?;
            w.tags()
        }
        // Cluster-shard APIs without arrays, or not group APIs.
        _ => Ok(()),
    }
}

fn join_group(w: &mut Walker, v: i16) -> Result<()> {
    w.string()?;
    w.i32()?;
    if v >= 1 {
        w.i32()?;
    }
    w.string()?;
    if v >= 5 {
        w.string()?;
    }
    w.string()?;
    w.each(|w| {
        w.string()?;
        w.bytes()?;
        w.tags()
    })?;
    if v >= 8 {
        w.string()?;
    }
    w.tags()
}

fn sync_group(w: &mut Walker, v: i16) -> Result<()> {
    w.string()?;
    w.i32()?;
    w.string()?;
    if v >= 3 {
        w.string()?;
    }
    if v >= 5 {
        w.string()?;
        w.string()?;
    }
    w.each(|w| {
        w.string()?;
        w.bytes()?;
        w.tags()
    })?;
    w.tags()
}

fn leave_group(w: &mut Walker, v: i16) -> Result<()> {
    w.string()?;
    if v <= 2 {
        w.string()?;
    } else {
        w.each(|w| {
            w.string()?;
            w.string()?;
            if v >= 5 {
                w.string()?;
            }
            w.tags()
        })?;
    }
    w.tags()
}

fn offset_commit(w: &mut Walker, v: i16) -> Result<()> {
    w.string()?;
    w.i32()?;
    w.string()?;
    if v >= 7 {
        w.string()?;
    }
    if v <= 4 {
        w.i64()?;
    }
    w.each(|w| {
        // v10 names the topic by id.
        if v >= 10 {
            w.uuid()?;
        } else {
            w.string()?;
        }
        w.each(|w| {
            w.i32()?;
            w.i64()?;
            if v >= 6 {
                w.i32()?;
            }
            w.string()?;
            w.tags()
        })?;
        w.tags()
    })?;
    w.tags()
}

fn offset_fetch(w: &mut Walker, v: i16) -> Result<()> {
    let topics = |w: &mut Walker| {
        w.each(|w| {
            if v >= 10 {
                w.uuid()?;
            } else {
                w.string()?;
            }
            w.each(|w| w.i32())?;
            w.tags()
        })
    };
    if v <= 7 {
        w.string()?;
        topics(w)?;
    } else {
        w.each(|w| {
            w.string()?;
            if v >= 9 {
                w.string()?;
                w.i32()?;
            }
            topics(w)?;
            w.tags()
        })?;
    }
    if v >= 7 {
        w.i8()?;
    }
    w.tags()
}
