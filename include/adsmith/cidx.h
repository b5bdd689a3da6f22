/* cidx: the compiled campaign index (issue 4, point 4). Contract to be written. */
#ifndef ADSMITH_CIDX_H
#define ADSMITH_CIDX_H
#endif
